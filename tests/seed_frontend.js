// The seed document's three frontend snippets, exactly as written there (checked by
// tests/e2e/test_counter_page_browser.py). The merchant test page supplies `token`, the host and
// the helpers they call (showSuccessPage, showFailurePage).

// 创建支付订单
async function createPaymentOrder() {
  try {
    const response = await fetch('/api/v1/payment/lakala/counter/create', {
      method: 'POST',
      headers: {
        'Content-Type': 'application/json',
        'Authorization': `Bearer ${token}`
      },
      body: JSON.stringify({
        out_order_no: `ORDER${Date.now()}`,
        total_amount: 100, // ¥1.00
        order_info: '测试商品购买',
        notify_url: 'https://your-domain.com/api/payment/notify',
        callback_url: 'https://your-domain.com/payment/success',
        payment_method: 'ALIPAY'
      })
    });

    const result = await response.json();
    
    if (result.code === '000000') {
      // 重定向到收银台页面
      window.location.href = result.data.counter_url;
    } else {
      console.error('创建订单失败:', result.msg);
    }
  } catch (error) {
    console.error('请求失败:', error);
  }
}

// 支付成功回调页面
function handlePaymentCallback() {
  const urlParams = new URLSearchParams(window.location.search);
  const orderNo = urlParams.get('out_order_no');
  const status = urlParams.get('status');
  
  if (status === 'SUCCESS') {
    // 显示支付成功页面
    showSuccessPage(orderNo);
  } else {
    // 显示支付失败页面
    showFailurePage(orderNo);
  }
}

// 轮询订单状态
async function pollOrderStatus(orderNo) {
  const maxAttempts = 30; // 最大尝试次数
  const interval = 2000; // 2秒间隔
  
  for (let i = 0; i < maxAttempts; i++) {
    try {
      const response = await fetch('/api/v1/payment/lakala/counter/query', {
        method: 'POST',
        headers: {
          'Content-Type': 'application/json',
          'Authorization': `Bearer ${token}`
        },
        body: JSON.stringify({ out_order_no: orderNo })
      });
      
      const result = await response.json();
      
      if (result.code === '000000') {
        const status = result.data.order_status;
        
        if (status === 'SUCCESS') {
          // 支付成功
          return { success: true, data: result.data };
        } else if (status === 'FAILED' || status === 'CLOSED') {
          // 支付失败或订单关闭
          return { success: false, error: `支付失败: ${status}` };
        }
        // 继续轮询
      }
    } catch (error) {
      console.error('查询订单状态失败:', error);
    }
    
    await new Promise(resolve => setTimeout(resolve, interval));
  }
  
  return { success: false, error: '支付超时' };
}
